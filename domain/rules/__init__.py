"""The rules of loyalty as plain functions over plain values (CONTRACT.md section 3).

Nothing here touches a database, a broker or the clock: the engine loads values, calls a
rule, and writes what the rule decided. Tests call the rules directly.
"""
