"""Authority-neutral building blocks: money, the neutral invoice, certification results, errors."""
