"""The minimum-data study: how many real images does a swap need, and what can synthetic ones replace?"""
