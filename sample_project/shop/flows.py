"""The shop's pgflow flows. Alembic autogenerate turns changes here into migrations, and
`alembic-pgflow worker` runs their handlers. Handlers are not part of a flow's definition:
changing one needs no migration."""

from typing import Any

from alembic_pgflow import Flow, TaskContext


def fetch_website(value: dict[str, Any]) -> dict[str, str]:
    """The root step gets the run's input under "run"."""
    url = value["run"]["url"]
    return {"url": url, "html": f"<html><title>{url}</title><p>Great shop, fast delivery.</p>"}


def summarize(value: dict[str, Any]) -> str:
    """A dependent step gets each dependency's output under its slug."""
    html = value["website"]["html"]
    return html.split("<p>", 1)[1].split("</p>", 1)[0]


def score_sentiment(value: dict[str, Any]) -> float:
    words = value["website"]["html"].lower().split()
    return round(sum(word.strip(".,") in {"great", "fast"} for word in words) / 2, 3)


async def save(value: dict[str, Any], context: TaskContext) -> dict[str, Any]:
    """Handlers may be async and may take a context (run id, step, task index, attempt)."""
    return {"summary": value["summary"], "sentiment": value["sentiment"], "run": context.run_id}


# Parallel steps and a join: summary and sentiment both wait for website, save waits for both.
analyze_website = (
    Flow("analyze_website", max_attempts=5, base_delay=5, timeout=60)
    .step("website", handler=fetch_website)
    .step("summary", depends_on=["website"], timeout=300, handler=summarize)
    .step("sentiment", depends_on=["website"], max_attempts=5, handler=score_sentiment)
    .step("save_to_db", depends_on=["summary", "sentiment"], handler=save)
)

# A map step over the fetched reviews, and a publishing step that starts 10 s after them.
# (Everything here works on every pgflow release from 0.7; step conditions need 0.14.)
score_reviews = (
    Flow("score_reviews", timeout=30)
    .step("fetch_reviews", handler=lambda value: value["run"]["reviews"])
    .map("score_review", array="fetch_reviews", max_attempts=2, handler=lambda text: len(text) % 5)
    .step(
        "publish_scores",
        depends_on=["score_review"],
        start_delay=10,
        handler=lambda value: {"scores": value["score_review"]},
    )
)
