"""The certificate desk's parts: the grid and its model, status badges, the filter bar, the
review queue, a certificate's history and findings, and the rule-driven edit form."""
