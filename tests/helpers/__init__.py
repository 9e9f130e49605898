"""Test helpers importable from any test module (`from helpers.cifar import ...`)."""
