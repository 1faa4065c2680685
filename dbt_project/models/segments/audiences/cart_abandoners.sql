-- Added to cart or started checkout in the last 7 days without completing an order in that time.
{{ did_event(['product_added_to_cart', 'checkout_started'], within_days=7) }}
except
{{ did_event('order_completed', within_days=7) }}
