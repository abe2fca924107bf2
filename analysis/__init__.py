"""From judgments to the ablation table with honest uncertainty.

Pure modules (no Django): `frames` (the canonical judgments frame), `counts` (judgments reduced
to per-comparison and per-rater counts), `stats` (majority votes, Wilson, sign test, prompt
bootstrap), `ratings` (Bradley–Terry–Davidson), `agreement` (κ, α, splits, QC), `metrics`
(humans vs automatic scores), `summary` (everything for one study), `figures` (plotly),
`present`, `export` (file writers), `synthetic` (seeded simulated studies).
Django-aware: `queries` (the only one reading the database), `views`, `urls`, the
`export_results` command.
"""
