"""Drive the demo page in headless Chromium (Playwright): the browser test and `lcrec demo --screenshot` share it."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_FLAGS = (
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
)


@contextmanager
def chromium_page(
    executable: str | Path = CHROMIUM, timeout_s: float = 30.0, viewport: tuple[int, int] = (1280, 1000)
) -> Iterator:
    """A Playwright page in headless Chromium (Debian's `chromium` package by default); every wait is bounded."""
    from playwright.sync_api import sync_playwright

    if not Path(executable).exists():
        raise FileNotFoundError(f"{executable}: Chromium is not installed (Debian: apt-get install -y chromium)")
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=str(executable), args=list(CHROMIUM_FLAGS))
        try:
            page = browser.new_page(viewport={"width": viewport[0], "height": viewport[1]})
            page.set_default_timeout(timeout_s * 1000)
            yield page
        finally:
            browser.close()


def recommend_in_page(page, url: str, query: str, picks: int = 1) -> list[str]:
    """Open the demo, search `query`, add the first `picks` hits to the history, press Recommend.

    Returns the labels of the added items; waits until the status line reports the recommendations.
    """
    from playwright.sync_api import expect

    page.goto(url, wait_until="domcontentloaded")
    page.locator("#search-box").locator("textarea, input").first.fill(query)
    page.locator("#search-button").click()
    hits = page.locator("#search-results label")
    expect(hits.first).to_be_visible()
    if hits.count() < picks:
        raise ValueError(f"the search {query!r} found {hits.count()} items, fewer than the {picks} to add")
    added = []
    for position in range(picks):
        hit = hits.nth(position)
        label = hit.inner_text().strip()
        hit.click()
        page.locator("#add-button").click()
        item_id = label.rsplit("(#", 1)[-1].rstrip(")")
        expect(page.locator("#status")).to_contain_text(f"Added #{item_id}:")
        added.append(label)
    page.locator("#recommend-button").click()
    expect(page.locator("#status")).to_contain_text(f"for a history of {picks}")
    return added
