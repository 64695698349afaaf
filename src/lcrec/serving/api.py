"""The HTTP API: POST /recommend (micro-batched), GET /items?q= (title search), GET /health."""

from __future__ import annotations

import asyncio
from contextlib import asynccontextmanager

from fastapi import FastAPI, Query, Request
from fastapi.responses import JSONResponse
from pydantic import BaseModel, ConfigDict, Field

from .batcher import MicroBatcher, QueueFull
from .recommender import Recommender, RequestError


class ModelFailure(RuntimeError):
    """recommend() raised on a validated batch (a server-side bug or resource problem): HTTP 500 with the cause."""


class RecommendRequest(BaseModel):
    """One user (`history`) or a batch (`histories`) of item-id histories, oldest first."""

    model_config = ConfigDict(extra="forbid")

    history: list[int] | None = Field(default=None, description="one user's item ids, oldest first")
    histories: list[list[int]] | None = Field(default=None, description="several users' histories")
    top_k: int | None = Field(default=None, description="how many items to return (server default when omitted)")
    num_beams: int | None = Field(default=None, description="beam width (>= top_k; the model's default when omitted)")


class Item(BaseModel):
    item_id: int
    title: str


class RankedItem(Item):
    rank: int
    score: float


class Recommendations(BaseModel):
    items: list[RankedItem]


class BatchRecommendations(BaseModel):
    results: list[Recommendations]


def create_app(recommender: Recommender) -> FastAPI:
    """A FastAPI app serving `recommender`; its micro-batcher runs for the app's lifetime."""
    config = recommender.config

    def run_batch(histories: list[list[int]], key: tuple[int, int | None]) -> list:
        top_k, num_beams = key
        return recommender.recommend(histories, top_k=top_k, num_beams=num_beams)

    batcher = MicroBatcher(run_batch, max_batch=config.max_batch, max_wait_s=config.max_wait_ms / 1000, max_queue=config.max_queue)

    @asynccontextmanager
    async def lifespan(app: FastAPI):
        batcher.start()
        try:
            yield
        finally:
            await asyncio.to_thread(batcher.stop)

    app = FastAPI(title="lcrec", description=f"LC-Rec recommendations from {recommender.name}", lifespan=lifespan)
    app.state.recommender = recommender
    app.state.batcher = batcher

    @app.exception_handler(RequestError)
    async def unprocessable(request: Request, error: RequestError) -> JSONResponse:
        return JSONResponse(status_code=422, content={"detail": str(error)})

    @app.exception_handler(QueueFull)
    async def busy(request: Request, error: QueueFull) -> JSONResponse:
        return JSONResponse(status_code=503, content={"detail": str(error)}, headers={"Retry-After": "1"})

    @app.exception_handler(ModelFailure)
    async def failed(request: Request, error: ModelFailure) -> JSONResponse:
        return JSONResponse(status_code=500, content={"detail": str(error)})

    @app.post("/recommend", response_model=Recommendations | BatchRecommendations)
    async def recommend(body: RecommendRequest) -> dict:
        """Top-k items for one history (`{"items": [...]}`) or for each of several (`{"results": [...]}`)."""
        if (body.history is None) == (body.histories is None):
            raise RequestError("give exactly one of `history` (one user) or `histories` (a batch)")
        histories = [body.history] if body.history is not None else body.histories
        top_k = config.default_top_k if body.top_k is None else body.top_k
        recommender.check_request(histories, top_k, body.num_beams)
        future = batcher.submit(histories, (top_k, body.num_beams))
        try:
            ranked = await asyncio.wrap_future(future)
        except Exception as error:
            raise ModelFailure(f"recommend() failed on this batch: {type(error).__name__}: {error}") from error
        results = [{"items": [item.to_dict() for item in items]} for items in ranked]
        return results[0] if body.history is not None else {"results": results}

    @app.get("/items", response_model=list[Item])
    async def items(q: str = Query("", description="words that must all appear in the title"), limit: int = Query(20, ge=1, le=1000)) -> list[dict]:
        """Search the catalogue by title."""
        return recommender.search(q, limit=limit)

    @app.get("/health")
    async def health() -> dict:
        """Liveness plus the model, catalogue size, queue state and batching settings."""
        return {
            "status": "ok",
            "model": recommender.name,
            "num_items": recommender.num_items,
            "queue": batcher.stats(),
            "batching": {"max_batch": config.max_batch, "max_wait_ms": config.max_wait_ms},
        }

    return app
