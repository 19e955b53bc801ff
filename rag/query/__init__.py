"""The question analysed: its terms and kind, the places it names, follow-ups and synonyms."""
