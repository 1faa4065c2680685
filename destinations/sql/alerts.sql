-- Alert state (schema `{{ schema }}`, destinations.state.STATE_SCHEMA): what was raised, once per
-- condition, and every notice owed to a channel. Created if missing by every alert evaluation
-- (destinations/alerts/alerter.py, through destinations/state.py). Texts hold names and counts,
-- never personal data.

create schema if not exists {{ schema }};

-- One row per time a rule's condition opened for a subject (a sync, a segment, a Dagster job):
-- an alert fires when it opens, not again while it holds (last_seen_at moves on), and is
-- resolved when a later evaluation finds the condition clear. The next time it opens is a new row.
create table if not exists {{ schema }}.alerts (
    alert_id varchar not null,
    rule_name varchar not null,
    -- run_failed | rejected_share | audience_change | slow_run | segment_below_minimum
    rule_kind varchar not null,
    -- "sync <name>", "segment <name>" or "job <name>"
    subject varchar not null,
    -- tells apart several conditions of one rule on one subject (a job's failed steps), else ''
    condition_key varchar not null,
    summary varchar not null,
    -- JSON: the names, counts and thresholds the notice carries
    facts varchar,
    first_seen_at timestamp not null,
    last_seen_at timestamp not null,
    last_sent_at timestamp,
    resolved_at timestamp
);

-- One row per notice owed to a channel: "fired" when the alert opened, "resolved" when it
-- cleared (if the rule says so). A channel that is down leaves it pending; every evaluation
-- sends what is pending, oldest first.
create table if not exists {{ schema }}.alert_deliveries (
    alert_id varchar not null,
    channel varchar not null,
    -- fired | resolved
    notice varchar not null,
    -- pending | sent | abandoned (its channel left alerts.yml)
    status varchar not null,
    attempts integer not null,
    last_error varchar,
    created_at timestamp not null,
    last_attempt_at timestamp,
    sent_at timestamp
);
