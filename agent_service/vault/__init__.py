"""The credential vault: the only code in Hapex that can encrypt or decrypt a secret."""
