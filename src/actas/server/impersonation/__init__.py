"""Impersonation: who may act as whom (policy), actor tokens, redeeming them,
ending impersonations, and the impersonated user's access history."""
