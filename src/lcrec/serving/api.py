"""The HTTP API: POST /recommend (micro-batched), GET /items?q= (title search), GET /health.

Bodies are parsed strictly (`request_body`) and validated with strict types: a bad body is a 422 naming the field,
never a 500. With an API key, every route but /health and the OpenAPI docs needs `Authorization: Bearer KEY`.
"""

from __future__ import annotations

import asyncio
from contextlib import asynccontextmanager
from dataclasses import asdict
from typing import Annotated, Any

from fastapi import Depends, FastAPI, HTTPException, Query, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from ..generation import resolve_num_beams
from .auth import secrets_match
from .batcher import MicroBatcher, QueueFull
from .config import ServeConfig
from .recommender import Recommender, RequestError
from .request_body import InvalidBody, parse_json_body


class ModelFailure(RuntimeError):
    """recommend() raised on a validated batch (a server-side bug or resource problem): HTTP 500 with the cause."""


class RecommendRequest(BaseModel):
    """One user (`history`) or a batch (`histories`) of item-id histories, oldest first.

    Strict types: an item id, `top_k` or `num_beams` must be a JSON integer (not `12.0`, `"12"` or `true`).
    """

    model_config = ConfigDict(extra="forbid", strict=True)

    history: list[int] | None = Field(default=None, description="one user's item ids, oldest first")
    histories: list[list[int]] | None = Field(default=None, description="several users' histories")
    top_k: int | None = Field(default=None, description="how many items to return (server default when omitted)")
    num_beams: int | None = Field(
        default=None, description="beam width (>= top_k; the model's generation_config.num_beams when omitted)"
    )


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


JSON_MEDIA_TYPE = "application/json"
# The `Authorization: Bearer KEY` reader (stateless; None when absent or another scheme, so routes choose the answer).
BEARER = HTTPBearer(auto_error=False, description="the server's API key (`lcrec serve --api_key` / LCREC_API_KEY)")
Credentials = Annotated[HTTPAuthorizationCredentials | None, Depends(BEARER)]


async def read_json_request(request: Request, schema: type[BaseModel], max_bytes: int) -> Any:
    """The request body as a validated `schema` instance: 415 for a non-JSON type, 413 past `max_bytes`, else 422.

    Every 422 carries the offending field's place (`loc`) in FastAPI's error format, without echoing the input.
    """
    media_type = request.headers.get("content-type", JSON_MEDIA_TYPE).split(";")[0].strip().lower()
    if media_type != JSON_MEDIA_TYPE and not media_type.endswith("+json"):
        raise HTTPException(415, detail=f"send the body as JSON (Content-Type: {JSON_MEDIA_TYPE}), not {media_type}")
    declared = request.headers.get("content-length", "")
    too_large = f"the body is larger than this server's limit of {max_bytes} bytes"
    if declared.isdigit() and int(declared) > max_bytes:
        raise HTTPException(413, detail=too_large)
    raw = bytearray()
    async for chunk in request.stream():
        raw += chunk
        if len(raw) > max_bytes:
            raise HTTPException(413, detail=too_large)
    try:
        return schema.model_validate(parse_json_body(bytes(raw)))
    except InvalidBody as error:
        raise RequestValidationError([{"type": error.kind, "loc": error.loc, "msg": error.message}]) from None
    except ValidationError as error:
        problems = [
            {"type": problem["type"], "loc": ("body", *problem["loc"]), "msg": describe_problem(problem)}
            for problem in error.errors(include_url=False, include_context=False)
        ]
        raise RequestValidationError(problems) from None


def describe_problem(problem: dict[str, Any]) -> str:
    """Pydantic's message, plus what was sent when an integer was expected (`true`, `12.5`, a string)."""
    if problem["type"] != "int_type":
        return problem["msg"]
    value = problem.get("input")
    if isinstance(value, bool):
        sent = "true" if value else "false"
    elif isinstance(value, float):
        sent = f"the number {value!r}"
    else:
        sent = {str: "a string", type(None): "null", list: "an array", dict: "an object"}.get(
            type(value), "another type"
        )
    return f"expected a JSON integer, got {sent}"


def json_body_schema(schema: type[BaseModel]) -> dict[str, Any]:
    """OpenAPI `requestBody` for a route that reads its body itself (so /docs still shows the fields)."""
    return {"requestBody": {"required": True, "content": {JSON_MEDIA_TYPE: {"schema": schema.model_json_schema()}}}}


def create_app(recommender: Recommender, api_key: str | None = None) -> FastAPI:
    """A FastAPI app serving `recommender`; its micro-batcher runs for the app's lifetime.

    Batching and request sizes follow the recommender's ServeConfig (a plain RequestLimits gets ServeConfig's
    defaults for them).

    With `api_key`, /recommend and /items answer 401 (with `WWW-Authenticate: Bearer`) unless the request carries
    `Authorization: Bearer <api_key>`; /health stays open for liveness probes but shows its details only to callers
    with the key.
    """
    config = recommender.config
    if not isinstance(config, ServeConfig):
        config = ServeConfig(**asdict(config))

    def run_batch(histories: list[list[int]], num_beams: int) -> list:
        # Every request in the batch decodes with the same beams; each keeps its own top_k of the ranked beams
        # (the decoder's top k is the first k of its top num_beams, so sharing changes no result).
        return recommender.rank(histories, top_k=num_beams, num_beams=num_beams)

    def batch_beams(top_k: int, num_beams: int | None) -> int:
        """The beam count a request decodes with, which is what it must share with its batch: beam search with
        more beams can rank differently. The model's default when omitted, at most the catalogue size (as in
        recommend(): more beams than items give the same ranking)."""
        return min(resolve_num_beams(recommender.model, num_beams, top_k), recommender.num_items)

    batcher = MicroBatcher(
        run_batch, max_batch=config.max_batch, max_wait_s=config.max_wait_ms / 1000, max_queue=config.max_queue
    )

    def is_authorized(credentials: HTTPAuthorizationCredentials | None) -> bool:
        return api_key is None or (credentials is not None and secrets_match(credentials.credentials, api_key))

    def authorized(credentials: Credentials) -> None:
        if not is_authorized(credentials):
            challenge = "Bearer" if credentials is None else 'Bearer error="invalid_token"'
            problem = "missing" if credentials is None else "wrong"
            raise HTTPException(
                401,
                detail=f"{problem} API key: send the header `Authorization: Bearer <key>`",
                headers={"WWW-Authenticate": challenge},
            )

    @asynccontextmanager
    async def lifespan(app: FastAPI):
        batcher.start()
        try:
            yield
        finally:
            await asyncio.to_thread(batcher.stop)

    description = "LC-Rec recommendations: items ranked by generated semantic IDs"
    app = FastAPI(title="lcrec", description=description, lifespan=lifespan)
    app.state.recommender = recommender
    app.state.batcher = batcher

    @app.exception_handler(RequestValidationError)
    async def invalid(request: Request, error: RequestValidationError) -> JSONResponse:
        # FastAPI's own handler echoes the input, which fails to encode for NaN (a 500): place and message only.
        problems = [
            {
                "type": str(problem.get("type", "invalid")),
                "loc": list(problem.get("loc", ())),
                "msg": str(problem.get("msg", "")),
            }
            for problem in error.errors()
        ]
        return JSONResponse(status_code=422, content={"detail": problems})

    @app.exception_handler(RequestError)
    async def unprocessable(request: Request, error: RequestError) -> JSONResponse:
        return JSONResponse(status_code=422, content={"detail": str(error)})

    @app.exception_handler(QueueFull)
    async def busy(request: Request, error: QueueFull) -> JSONResponse:
        return JSONResponse(status_code=503, content={"detail": str(error)}, headers={"Retry-After": "1"})

    @app.exception_handler(ModelFailure)
    async def failed(request: Request, error: ModelFailure) -> JSONResponse:
        return JSONResponse(status_code=500, content={"detail": str(error)})

    @app.post(
        "/recommend",
        response_model=Recommendations | BatchRecommendations,
        dependencies=[Depends(authorized)],
        openapi_extra=json_body_schema(RecommendRequest),
    )
    async def recommend(request: Request) -> dict:
        """Top-k items for one history (`{"items": [...]}`) or for each of several (`{"results": [...]}`)."""
        body = await read_json_request(request, RecommendRequest, config.max_body_bytes)
        if (body.history is None) == (body.histories is None):
            raise RequestError("give exactly one of `history` (one user) or `histories` (a batch)")
        histories = [body.history] if body.history is not None else body.histories
        if len(histories) > config.max_users_per_request:
            raise RequestError(
                f"{len(histories)} histories in one request; at most {config.max_users_per_request} allowed"
            )
        top_k = config.default_top_k if body.top_k is None else body.top_k
        histories = recommender.check_request(histories, top_k, body.num_beams)
        future = batcher.submit(histories, batch_beams(top_k, body.num_beams))
        try:
            ranked = await asyncio.wrap_future(future)
        except Exception as error:
            raise ModelFailure(f"recommend() failed on this batch: {type(error).__name__}: {error}") from error
        results = [{"items": [item.to_dict() for item in items[:top_k]]} for items in ranked]
        return results[0] if body.history is not None else {"results": results}

    @app.get("/items", response_model=list[Item], dependencies=[Depends(authorized)])
    async def items(
        q: str = Query("", description="words that must all appear in the title"),
        limit: int = Query(20, ge=1, le=1000),
    ) -> list[dict]:
        """Search the catalogue by title."""
        return recommender.search(q, limit=limit)

    @app.get("/health")
    async def health(credentials: Credentials) -> dict:
        """Liveness (open to all); with the key (or on a server without one) also the model, queue and batching."""
        if not is_authorized(credentials):
            return {"status": "ok"}
        return {
            "status": "ok",
            "model": recommender.name,
            "num_items": recommender.num_items,
            "queue": batcher.stats(),
            "batching": {"max_batch": config.max_batch, "max_wait_ms": config.max_wait_ms},
        }

    return app
