"""The example flow from the README, compiled to the SQL pgflow expects."""

from alembic_pgflow import Flow, compile_flow, options_checksum, structure_checksum

analyze = (
    Flow("analyze_website", max_attempts=3, base_delay=5, timeout=10)
    .step("website")
    .step("sentiment", depends_on=["website"], max_attempts=5, timeout=30)
    .step("summary", depends_on=["website"])
    .step("save_to_db", depends_on=["sentiment", "summary"])
    .map("scores", array="summary", base_delay=2)
)

if __name__ == "__main__":
    print("\n".join(compile_flow(analyze)))
    print(f"-- structure checksum {structure_checksum(analyze)}")
    print(f"-- options checksum   {options_checksum(analyze)}")
