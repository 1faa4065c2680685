-- Customers (at least one purchase) living in the United Kingdom.
{{ has_attribute("orders_count > 0") }}
intersect
select profile_id from {{ ref('profiles') }}
where country = 'GB'
