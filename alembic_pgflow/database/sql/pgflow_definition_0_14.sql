-- A stand-in for pgflow 0.14's definition layer, for tests and local development only.
--
-- It reproduces what alembic-pgflow reads and writes: the tables pgflow.flows, pgflow.steps and
-- pgflow.deps with their constraints, pgflow.is_valid_slug, and the functions
-- pgflow.create_flow and pgflow.add_step with pgflow's first-write-wins behaviour, plus a
-- minimal pgflow.runs table so that history checks can be exercised. It has no workers, no
-- runtime functions and no pgmq: production databases run a real pgflow installation.
-- create_flow creates the flow's pgmq queue only where a pgmq schema exists.

CREATE SCHEMA pgflow;

CREATE FUNCTION pgflow.is_valid_slug(slug text) RETURNS boolean
LANGUAGE sql IMMUTABLE SET search_path = ''
AS $fn$
  SELECT slug IS NOT NULL
     AND slug <> ''
     AND length(slug) <= 128
     AND slug ~ '^[a-zA-Z_][a-zA-Z0-9_]*$'
     AND slug <> 'run'
$fn$;

CREATE TABLE pgflow.flows (
  flow_slug text PRIMARY KEY,
  opt_max_attempts int NOT NULL DEFAULT 3,
  opt_base_delay int NOT NULL DEFAULT 1,
  opt_timeout int NOT NULL DEFAULT 60,
  created_at timestamptz NOT NULL DEFAULT now(),
  CONSTRAINT slug_is_valid CHECK (pgflow.is_valid_slug(flow_slug)),
  CONSTRAINT opt_max_attempts_is_nonnegative CHECK (opt_max_attempts >= 0),
  CONSTRAINT opt_base_delay_is_nonnegative CHECK (opt_base_delay >= 0),
  CONSTRAINT opt_timeout_is_positive CHECK (opt_timeout > 0)
);

CREATE TABLE pgflow.steps (
  flow_slug text NOT NULL REFERENCES pgflow.flows (flow_slug),
  step_slug text NOT NULL,
  step_type text NOT NULL DEFAULT 'single',
  step_index int NOT NULL DEFAULT 0,
  deps_count int NOT NULL DEFAULT 0 CHECK (deps_count >= 0),
  opt_max_attempts int,
  opt_base_delay int,
  opt_timeout int,
  created_at timestamptz NOT NULL DEFAULT now(),
  opt_start_delay int,
  required_input_pattern jsonb,
  forbidden_input_pattern jsonb,
  when_unmet text NOT NULL DEFAULT 'skip',
  when_exhausted text NOT NULL DEFAULT 'fail',
  PRIMARY KEY (flow_slug, step_slug),
  UNIQUE (flow_slug, step_index),
  CHECK (pgflow.is_valid_slug(step_slug)),
  CHECK (step_type IN ('single', 'map')),
  CONSTRAINT opt_max_attempts_is_nonnegative CHECK (opt_max_attempts IS NULL OR opt_max_attempts >= 0),
  CONSTRAINT opt_base_delay_is_nonnegative CHECK (opt_base_delay IS NULL OR opt_base_delay >= 0),
  CONSTRAINT opt_timeout_is_positive CHECK (opt_timeout IS NULL OR opt_timeout > 0),
  CONSTRAINT opt_start_delay_is_nonnegative CHECK (opt_start_delay IS NULL OR opt_start_delay >= 0),
  CONSTRAINT required_input_pattern_is_object CHECK (
    required_input_pattern IS NULL OR jsonb_typeof(required_input_pattern) = 'object'),
  CONSTRAINT forbidden_input_pattern_is_object CHECK (
    forbidden_input_pattern IS NULL OR jsonb_typeof(forbidden_input_pattern) = 'object'),
  CONSTRAINT when_unmet_is_valid CHECK (when_unmet IN ('fail', 'skip', 'skip-cascade')),
  CONSTRAINT when_exhausted_is_valid CHECK (when_exhausted IN ('fail', 'skip', 'skip-cascade'))
);

CREATE TABLE pgflow.deps (
  flow_slug text NOT NULL REFERENCES pgflow.flows (flow_slug),
  dep_slug text NOT NULL,
  step_slug text NOT NULL,
  created_at timestamptz NOT NULL DEFAULT now(),
  PRIMARY KEY (flow_slug, dep_slug, step_slug),
  FOREIGN KEY (flow_slug, dep_slug) REFERENCES pgflow.steps (flow_slug, step_slug),
  FOREIGN KEY (flow_slug, step_slug) REFERENCES pgflow.steps (flow_slug, step_slug),
  CHECK (dep_slug <> step_slug)
);

CREATE INDEX ON pgflow.deps (flow_slug, step_slug);
CREATE INDEX ON pgflow.deps (flow_slug, dep_slug);

CREATE TABLE pgflow.runs (
  run_id uuid PRIMARY KEY DEFAULT gen_random_uuid(),
  flow_slug text NOT NULL REFERENCES pgflow.flows (flow_slug),
  status text NOT NULL DEFAULT 'started',
  input jsonb NOT NULL,
  started_at timestamptz NOT NULL DEFAULT now()
);

CREATE INDEX ON pgflow.runs (flow_slug);

-- Omitted (or NULL) options become 3, 5 and 60. An existing slug is left as it is and its old
-- row is returned: new options are ignored.
CREATE FUNCTION pgflow.create_flow(
  flow_slug text,
  max_attempts int DEFAULT NULL,
  base_delay int DEFAULT NULL,
  timeout int DEFAULT NULL
) RETURNS pgflow.flows
LANGUAGE plpgsql VOLATILE SET search_path = ''
AS $fn$
DECLARE
  stored pgflow.flows;
BEGIN
  INSERT INTO pgflow.flows AS f (flow_slug, opt_max_attempts, opt_base_delay, opt_timeout)
  VALUES (create_flow.flow_slug, coalesce(create_flow.max_attempts, 3),
          coalesce(create_flow.base_delay, 5), coalesce(create_flow.timeout, 60))
  ON CONFLICT ON CONSTRAINT flows_pkey DO UPDATE SET flow_slug = f.flow_slug
  RETURNING * INTO stored;
  IF to_regnamespace('pgmq') IS NOT NULL THEN
    -- Nested, so that pgmq's functions are only looked up where pgmq exists.
    IF NOT EXISTS (
      SELECT 1 FROM pgmq.list_queues() AS q WHERE q.queue_name = create_flow.flow_slug
    ) THEN
      PERFORM pgmq.create(create_flow.flow_slug);
    END IF;
  END IF;
  RETURN stored;
END;
$fn$;

-- step_index is the next free index of the flow and deps_count the length of the array passed.
-- An existing step is left as it is, but dependency rows that are new are still inserted: this
-- is pgflow's behaviour, and why generated migrations must never re-run add_step.
CREATE FUNCTION pgflow.add_step(
  flow_slug text,
  step_slug text,
  deps_slugs text[] DEFAULT '{}',
  max_attempts int DEFAULT NULL,
  base_delay int DEFAULT NULL,
  timeout int DEFAULT NULL,
  start_delay int DEFAULT NULL,
  step_type text DEFAULT 'single',
  required_input_pattern jsonb DEFAULT NULL,
  forbidden_input_pattern jsonb DEFAULT NULL,
  when_unmet text DEFAULT 'skip',
  when_exhausted text DEFAULT 'fail'
) RETURNS pgflow.steps
LANGUAGE plpgsql VOLATILE SET search_path = ''
AS $fn$
DECLARE
  stored pgflow.steps;
  dep_total int := coalesce(cardinality(add_step.deps_slugs), 0);
BEGIN
  IF coalesce(add_step.step_type, 'single') = 'map' AND dep_total > 1 THEN
    RAISE EXCEPTION 'Map step "%" can have at most one dependency, but % were provided: %',
      add_step.step_slug, dep_total, array_to_string(add_step.deps_slugs, ', ');
  END IF;

  INSERT INTO pgflow.steps AS s (
    flow_slug, step_slug, step_type, step_index, deps_count,
    opt_max_attempts, opt_base_delay, opt_timeout, opt_start_delay,
    required_input_pattern, forbidden_input_pattern, when_unmet, when_exhausted)
  SELECT add_step.flow_slug, add_step.step_slug, coalesce(add_step.step_type, 'single'),
         coalesce(max(existing.step_index) + 1, 0), dep_total,
         add_step.max_attempts, add_step.base_delay, add_step.timeout, add_step.start_delay,
         add_step.required_input_pattern, add_step.forbidden_input_pattern,
         add_step.when_unmet, add_step.when_exhausted
  FROM (SELECT 1) AS one
  LEFT JOIN pgflow.steps AS existing ON existing.flow_slug = add_step.flow_slug
  ON CONFLICT ON CONSTRAINT steps_pkey DO UPDATE SET step_slug = s.step_slug
  RETURNING * INTO stored;

  INSERT INTO pgflow.deps (flow_slug, dep_slug, step_slug)
  SELECT add_step.flow_slug, dep.slug, add_step.step_slug
  FROM unnest(coalesce(add_step.deps_slugs, '{}')) AS dep(slug)
  ON CONFLICT ON CONSTRAINT deps_pkey DO NOTHING;

  RETURN stored;
END;
$fn$;
