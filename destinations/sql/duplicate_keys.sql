-- Keys two or more profiles would be sent under are invalid ('duplicate key') for every one of
-- them: reported, never sent, and what the destination holds under the key is left alone
-- (plan.sql). Counted among the rows that would be sent; a duplicate overrides 'malformed key'
-- ('null key' cannot repeat). Runs in the state store on the desired rows desired.sql made
-- (the temp table sync_desired), after they are stored: the keys alone, one aggregate.
update sync_desired
set invalid_reason = 'duplicate key'
where exclusion is null
    and record_key in (
        select record_key
        from sync_desired
        where exclusion is null and record_key is not null
        group by record_key
        having count(*) > 1
    )
