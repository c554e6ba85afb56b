"""Render stage: the response JSON (`response`) and subtitle / RTTM formats (`formats`)."""
