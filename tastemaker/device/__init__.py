"""The device side: the bundle an app downloads and the reference runtime that answers from it."""
