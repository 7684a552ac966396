"""The transducer: sequence tagging (POS, NER)."""
