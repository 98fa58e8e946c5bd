"""The framework under Keras: backend choice, quiet and lean import, JAX's compile cache, and every Keras
internal regbench touches (keras_internals)."""
