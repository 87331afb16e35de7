"""The stemwatch crawler: a Scrapy project (spider, middlewares, pipeline)."""
