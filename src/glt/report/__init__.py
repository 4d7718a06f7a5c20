"""Turn run results into paper-style tables (Markdown, CSV) and plots."""
