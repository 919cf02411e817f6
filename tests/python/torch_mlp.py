"""A small PyTorch model for the converter's .pt tests, at module level so that
torch.save can pickle it (a class defined inside a function cannot be pickled)."""
import torch


class MLP(torch.nn.Module):
    def __init__(self):
        super().__init__()
        self.fc1 = torch.nn.Linear(8, 16)
        self.fc2 = torch.nn.Linear(16, 4)

    def forward(self, x):
        return torch.softmax(self.fc2(torch.relu(self.fc1(x))), dim=-1)


def make():
    torch.manual_seed(0)
    return MLP().eval()
