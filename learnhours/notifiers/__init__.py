"""Notifiers: decide who gets what, keep the notice ledger, render and deliver mail."""
