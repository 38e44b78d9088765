
f1P”Zno subscription