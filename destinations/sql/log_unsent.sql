-- Invalid rows and skipped rejections of a plan go into the change log: reported, never
-- sent (destinations.state.log_unsent).
insert into {{ schema }}.changes
select
    :run_id,
    :sync_name,
    seq,
    case when op = 'invalid' then null else op end,
    profile_id,
    key_sha256,
    case when op = 'invalid' then 'invalid' else 'skipped' end,
    coalesce(invalid_reason, 'rejected by the destination earlier; retried when the record changes'),
    :now
from {{ plan_table }}
where op in ('invalid', 'skip_rejected')
