"""The pure core: the tick's values, the policy that bounds every action, survival arithmetic,
the prompt, and the rule strategies. No I/O; everything here is testable without fakes."""
