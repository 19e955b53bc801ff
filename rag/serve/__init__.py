"""Serving: the HTTP API, knowledge-base administration jobs and the feedback store."""
