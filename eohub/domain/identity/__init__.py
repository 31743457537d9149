"""Who a user is and what their groups allow: memberships, entitlements, access, profile, names."""
