"""The other modalities built on `nanog1.core`: text, vision, audio and world models.

One module per model (`text`, `vision`, `audio`, `world`), one per data source (`corpus`,
`tokenizer`, `images`, `audio_data`, `gridworld`, `sampling`), one per training loop
(`train_text`, `train_vision`, `train_audio`, `train_world`) and one model-file format
(`checkpoints`). Nothing here is imported by the cancer encoder (`nanog1.encoder`); both share
`nanog1.tracking`, `nanog1.checkpoint` and `nanog1.optim`. Import the module you need; nothing is
imported here so that one model's dependencies never load with another's.
"""
