"""The pieces of `python -m parts2whole.evaluate`: the person's silhouette in a generated image
(`segmentation`), the scores and targets (`scoring`), the table and sample sheet (`report`)."""
