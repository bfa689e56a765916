"""Models built from `nanog1.core`, one module per family (mutation, text, vision).

Import the family you need, e.g. `from nanog1.models.mutation import MutationEncoder`; nothing is
imported here so that one family's dependencies never load with another's.
"""
