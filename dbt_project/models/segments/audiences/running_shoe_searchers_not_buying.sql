-- Searched for running shoes in the last 30 days and placed no completed order since.
{{ did_event('product_searched', within_days=30, where="search_query like '%running shoe%'") }}
except
{{ did_event('order_placed', within_days=30, where="status = 'completed'") }}
