"""The shop's pgflow flows. Alembic autogenerate turns changes here into migrations."""

from alembic_pgflow import Flow


def fetch_website(payload: dict[str, str]) -> dict[str, str]:
    """Handlers run in pgflow workers; they are not part of the definition."""
    return {"url": payload["url"], "html": "..."}


# Parallel steps and a join: summary and sentiment both wait for website, save waits for both.
analyze_website = (
    Flow("analyze_website", max_attempts=5, base_delay=5, timeout=60)
    .step("website", handler=fetch_website)
    .step("summary", depends_on=["website"], timeout=300)
    .step("sentiment", depends_on=["website"], max_attempts=5)
    .step("save_to_db", depends_on=["summary", "sentiment"])
)

# A map step over the fetched reviews, and a publishing step that starts 10 s after them.
# (Everything here works on every pgflow release from 0.7; step conditions need 0.14.)
score_reviews = (
    Flow("score_reviews", timeout=30)
    .step("fetch_reviews")
    .map("score_review", array="fetch_reviews", max_attempts=2)
    .step("publish_scores", depends_on=["score_review"], start_delay=10)
)
