"""Signing-key backends of the appliance (file keys, PKCS#11 tokens, YubiKey PIV).

Every backend implements :class:`airseal.trustroot.signer.Signer`; nothing outside this package
needs to
know which one signed.
"""
