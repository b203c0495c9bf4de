"""Model plumbing shared by every scoring method.

- :mod:`.adapters`: where a model's heads are (:class:`HeadLayout`, architecture support);
- :mod:`.architectures`: the built-in architectures, one entry each (the paths to their parts);
- :mod:`.inputs`: tasks to token batches, and where the model lives;
- :mod:`.metrics`: the answer metrics, computed from logits at the answer positions;
- :mod:`.hooks`: the one hook toolkit (every hook on a model: head slices of the attention
  output projection's input, decoder-layer inputs and outputs) and its strategies;
- :mod:`.batching`: memory planning and tiling recorded calls for replays.
"""
