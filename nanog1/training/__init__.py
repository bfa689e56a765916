"""Training, evaluation and tracking of the mutation encoder.

Entry points: `run.train_cohort` (`nanog1 train`), `evaluate.evaluate_cohort` (`nanog1 evaluate`),
`embed.embed_cohort` (`nanog1 embed`), `baselines.run_baselines` (`nanog1 baselines`); the loop
itself is `loop.fit`. Modules are imported on demand so that the CLI stays fast.
"""
