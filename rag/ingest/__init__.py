"""Ingest: files → text → paragraphs → metadata → section tree and chunks → a new index generation."""
