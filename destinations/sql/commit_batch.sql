-- One batch's outcomes, recorded in one transaction (destinations.state.commit_batch).
-- `batch_outcomes` (seq, status, error, destination_id) is registered by the caller: the
-- destination's answer for each change of the batch, by its seq in the plan table.
-- Records not confirmed stay in {{ schema }}.in_flight: some of them may have landed.
-- Statements with nothing to do are left out (destinations.state.BatchContext says which):
-- no confirmed record, no failure, no departed or failure rows this sync had before the run.
{% import "_dialect.sql" as d with context %}

-- the batch's plan rows beside their outcomes
{{ d.create_table_as('batch_rows', temporary=true) }}
select
    plan.seq,
    plan.op,
    plan.profile_id,
    plan.record_key,
    plan.key_sha256,
    plan.payload_hash,
    outcomes.status,
    outcomes.error,
    plan.first_confirmed_at,
    -- a connector names the platform's id when it learns it; otherwise the one kept so far
    coalesce(outcomes.destination_id, plan.destination_id) as destination_id
from {{ plan_table }} as plan
inner join batch_outcomes as outcomes on outcomes.seq = plan.seq
where plan.seq between :first_seq and :last_seq;

-- the change log: every change attempted, its outcome and the destination's error
insert into {{ schema }}.changes
select :run_id, :sync_name, seq, op, profile_id, key_sha256, status, error, :now
from batch_rows;

{% if clears_state %}
-- the confirmed keys the state may hold (an add's key it holds only in the rare case
-- destinations.state.BatchContext describes): a semi-join on the batch, one per window
delete from {{ schema }}.state
where sync_name = :sync_name
    and record_key in (
        select record_key from batch_rows
        where status = 'confirmed'{{ "" if state_may_hold_adds else " and op <> 'add'" }}
    );
{% endif %}

{% if any_confirmed %}
-- state advances only for what the destination confirmed
insert into {{ schema }}.state
select
    :sync_name,
    record_key,
    profile_id,
    payload_hash,
    coalesce(first_confirmed_at, :now),
    :now,
    :run_id,
    destination_id
from batch_rows
where status = 'confirmed' and op in ('add', 'update');

-- a record removed may stay at the destination (Mailchimp archives it): its key is kept in
-- departed so that a later privacy request can still reach it; a record added again leaves it
{% if clear_departed %}
delete from {{ schema }}.departed
where sync_name = :sync_name
    and record_key in (select record_key from batch_rows where status = 'confirmed');
{% endif %}

{% if confirmed_removes %}
insert into {{ schema }}.departed
select :sync_name, record_key, profile_id, destination_id, :now, :run_id
from batch_rows
where status = 'confirmed' and op = 'remove';
{% endif %}

-- only a confirmation settles a doubt: a per-record failure after an in-run retry
-- (timeout, dropped connection) may follow an attempt that did land
delete from {{ schema }}.in_flight
where sync_name = :sync_name
    and record_key in (select record_key from batch_rows where status = 'confirmed');
{% endif %}

-- failures: the same change failing again counts one more attempt; a rejection, or too
-- many attempts, makes it permanent (skipped until the record's payload changes)
{% if any_failed %}
{{ d.create_table_as('batch_failures', temporary=true) }}
select
    batch.key_sha256,
    batch.op,
    batch.payload_hash,
    batch.error,
    case
        when earlier.op = batch.op and earlier.payload_hash is not distinct from batch.payload_hash
            then earlier.attempts + 1
        else 1
    end as attempts,
    batch.status = 'rejected' as is_rejected,
    coalesce(earlier.first_failed_at, :now) as first_failed_at
from batch_rows as batch
left join {{ schema }}.failures as earlier
    on earlier.sync_name = :sync_name
    and earlier.key_sha256 = batch.key_sha256
where batch.status in ('failed', 'rejected');
{% endif %}

{% if clear_failures %}
delete from {{ schema }}.failures
where sync_name = :sync_name
    and key_sha256 in (select key_sha256 from batch_rows);
{% endif %}

{% if any_failed %}
insert into {{ schema }}.failures
select
    :sync_name,
    key_sha256,
    op,
    payload_hash,
    error,
    attempts,
    is_rejected or attempts >= :max_attempts,
    first_failed_at,
    :now,
    :run_id
from batch_failures;
{% endif %}

-- the run's running totals
update {{ schema }}.runs set
    sent = sent + :sent,
    confirmed = confirmed + :confirmed,
    failed = failed + :failed,
    rejected = rejected + :rejected
where run_id = :run_id;
