-- Loyalty card holders who only ever buy in store.
{{ has_attribute("channel_mix = 'in_store'") }}
intersect
{{ has_identifier('loyalty_card_id') }}
