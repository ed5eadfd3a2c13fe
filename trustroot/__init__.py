"""What Airseal trusts and how it checks it.

Pure logic: functions here take bytes, open binary streams or already-parsed models and return
verified results or raise a :class:`airseal.trustroot.errors.VerificationError`. Nothing in this
package
touches the database, the UI, the network or the clock (callers pass ``now``).
"""
