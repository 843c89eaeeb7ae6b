"""HTML views of the catalogue."""
from django.shortcuts import render


def home(request):
    return render(request, "catalog/home.html")
