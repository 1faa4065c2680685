-- The latest run of every sync, with its counts (destinations.state.last_runs).
select
    sync_name,
    status,
    message,
    started_at,
    finished_at,
    identifier_coverage,
    destination_report,
    {%- for count in counts %}
    {{ count.name }}{{ "," if not loop.last }}
    {%- endfor %}
from (
    select
        *,
        row_number() over (partition by sync_name order by started_at desc) as recency
    from {{ schema }}.runs
) as runs
where recency = 1
