"""The Gradio demo: search the catalogue, build a history, see top-K recommendations and the model's metrics."""

from __future__ import annotations

import os
from pathlib import Path

import gradio as gr
import pandas as pd

from .config import ServeConfig
from .recommender import Recommender, RequestError, format_metrics

HISTORY_COLUMNS = ["position", "item_id", "title"]
RECOMMENDATION_COLUMNS = ["rank", "item_id", "title", "score"]
SEARCH_LIMIT = 20


def build_demo(recommender: Recommender, title: str | None = None) -> gr.Blocks:
    """A Blocks app over `recommender`; element ids (`search-box`, `add-button`, ...) are stable for browser tests."""
    config = recommender.config
    title = title or f"LC-Rec: {display_name(recommender.name)}"

    def history_table_of(history: list[int]) -> pd.DataFrame:
        rows = [[position, item, recommender.titles[item]] for position, item in enumerate(history, start=1)]
        return pd.DataFrame(rows, columns=HISTORY_COLUMNS)

    def search(query: str):
        found = recommender.search(query or "", limit=SEARCH_LIMIT + 1)
        choices = [(f"{hit['title']} (#{hit['item_id']})", hit["item_id"]) for hit in found[:SEARCH_LIMIT]]
        note = (
            f"more than {SEARCH_LIMIT} matching items (first {SEARCH_LIMIT} shown)"
            if len(found) > SEARCH_LIMIT
            else f"{len(found)} matching items"
        )
        return gr.Radio(choices=choices, value=None), note

    def add(selected, history: list[int]):
        if selected is None:
            return history, history_table_of(history), "Pick an item from the search results first."
        if len(history) >= config.max_history:
            return history, history_table_of(history), f"The history is full ({config.max_history} items)."
        history = history + [int(selected)]
        return history, history_table_of(history), f"Added #{int(selected)}: {recommender.titles[int(selected)]}"

    def clear():
        return [], history_table_of([]), "History cleared.", pd.DataFrame(columns=RECOMMENDATION_COLUMNS)

    def recommend(history: list[int], top_k: float):
        if not history:
            return pd.DataFrame(columns=RECOMMENDATION_COLUMNS), "Add at least one item to the history first."
        try:
            (ranked,) = recommender.recommend([history], top_k=int(top_k))
        except RequestError as error:
            return pd.DataFrame(columns=RECOMMENDATION_COLUMNS), f"Cannot recommend: {error}"
        rows = [[item.rank, item.item_id, item.title, round(item.score, 4)] for item in ranked]
        return pd.DataFrame(
            rows, columns=RECOMMENDATION_COLUMNS
        ), f"Top {len(rows)} items for a history of {len(history)}."

    with gr.Blocks(title=title, analytics_enabled=False) as demo:
        gr.Markdown(
            f"# {title}\nSearch the catalogue ({recommender.num_items} items), add items to a history "
            "(oldest first), then ask for recommendations."
        )
        history_state = gr.State([])
        with gr.Row():
            with gr.Column():
                query = gr.Textbox(label="Search items by title", placeholder="e.g. microscope", elem_id="search-box")
                search_button = gr.Button("Search", elem_id="search-button")
                search_note = gr.Markdown(elem_id="search-note")
                matches = gr.Radio(choices=[], label="Matching items", elem_id="search-results")
                add_button = gr.Button("Add to history", elem_id="add-button")
                history_table = gr.Dataframe(
                    value=history_table_of([]), label="History", interactive=False, elem_id="history"
                )
                clear_button = gr.Button("Clear history", elem_id="clear-button")
            with gr.Column():
                top_k = gr.Slider(
                    1,
                    min(config.max_top_k, recommender.num_items),
                    value=min(config.default_top_k, recommender.num_items),
                    step=1,
                    label="Top-K",
                    elem_id="top-k",
                )
                recommend_button = gr.Button("Recommend", variant="primary", elem_id="recommend-button")
                status = gr.Markdown(elem_id="status")
                recommendations = gr.Dataframe(
                    value=pd.DataFrame(columns=RECOMMENDATION_COLUMNS),
                    label="Recommendations",
                    interactive=False,
                    elem_id="recommendations",
                )
        with gr.Accordion("Model card metrics", open=True):
            gr.Markdown(format_metrics(recommender.metrics), elem_id="metrics")

        query.submit(search, query, [matches, search_note])
        search_button.click(search, query, [matches, search_note])
        add_button.click(add, [matches, history_state], [history_state, history_table, status])
        clear_button.click(clear, None, [history_state, history_table, status, recommendations])
        recommend_button.click(recommend, [history_state, top_k], [recommendations, status])
    return demo


def display_name(name_or_path: str) -> str:
    """A repo id as it is; a local folder as its last two path parts (`runs/quickstart/model`: `quickstart/model`)."""
    path = Path(name_or_path)
    return "/".join(path.resolve().parts[-2:]) if path.is_dir() else name_or_path


def demo_from_pretrained(
    name_or_path: str, config: ServeConfig | None = None, metrics_path: str | None = None, device: str | None = None
) -> gr.Blocks:
    """Load a model folder or Hub repo and build its demo (what a Space's app.py calls)."""
    os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")
    return build_demo(
        Recommender.from_pretrained(name_or_path, config=config, device=device, metrics_path=metrics_path)
    )
