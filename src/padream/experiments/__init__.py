"""The paper's study: grids of runs, and engines that execute them."""
