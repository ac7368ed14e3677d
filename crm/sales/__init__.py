"""The sales workspace's core: prospect claims, outcomes, assignment, queue views, staff users."""
