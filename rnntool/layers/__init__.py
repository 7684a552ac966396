"""What every model kind builds from: recurrent stacks, encoders, attention, weight files."""
