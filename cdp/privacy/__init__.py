"""Erasure on the Python side: what `cdp forget` and `cdp privacy` do outside dbt.

``identifiers`` reads what a person typed into a normalised identifier (type detected or given);
``tombstones`` hashes it exactly as the dbt macro ``tombstone`` does; ``requests`` stores a
`cdp forget` request (its tombstone only) in ``privacy.forget_requests``; ``raw`` reports and
purges the raw rows that still hold an erased identifier. dbt does the erasing itself
(dbt_project/macros/privacy/erasure.sql).
"""
