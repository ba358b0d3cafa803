"""Speech synthesis with espeak-ng (phone and word events); used by the aligner and the demo corpus."""
