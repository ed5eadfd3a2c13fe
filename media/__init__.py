"""The on-media format shared by appliance and agent.

Layout, statements, safe reading, the atomic writer and the courier's check.
"""
