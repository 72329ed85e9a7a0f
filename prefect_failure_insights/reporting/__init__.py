"""What people read: the summary as markdown and text (`summary`), the batch report and its
exports (`batch`). Pure functions of the models; text from runs and LLMs is data."""
