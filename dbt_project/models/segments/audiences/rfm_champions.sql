-- RFM Champions: bought recently, buy often and spend the most.
{{ has_attribute("rfm_segment = 'Champions'") }}
