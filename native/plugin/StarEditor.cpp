#include "StarEditor.h"

#include "StarProcessor.h"
#include "star_parameters.h"

namespace {
const juce::Colour kBackground(0xff1d2329), kPanel(0xff262e36), kAccent(0xff4fb3d9),
    kText(0xffe6edf3), kDim(0xff9aa7b4);
constexpr int kWidth = 560, kRow = 34, kMargin = 16, kLabelWidth = 150;
}  // namespace

StarEditor::StarEditor(StarProcessor& owner)
    : AudioProcessorEditor(owner), processor_(owner) {
  auto& state = owner.parameters();
  for (const star::ParameterSpec& spec : star::kParameters) {
    const char* id = spec.id;
    SliderRow row;
    row.label = std::make_unique<juce::Label>();
    row.label->setText(state.getParameter(id)->getName(64), juce::dontSendNotification);
    row.label->setColour(juce::Label::textColourId, kText);
    row.slider = std::make_unique<juce::Slider>(juce::Slider::LinearHorizontal,
                                                juce::Slider::TextBoxRight);
    row.slider->setTextBoxStyle(juce::Slider::TextBoxRight, false, 80, kRow - 10);
    row.slider->setColour(juce::Slider::thumbColourId, kAccent);
    row.slider->setColour(juce::Slider::trackColourId, kAccent.withAlpha(0.5f));
    row.attachment = std::make_unique<Attachment>(state, id, *row.slider);
    addAndMakeVisible(*row.label);
    addAndMakeVisible(*row.slider);
    rows_.push_back(std::move(row));
  }
  texture_label_.setText("Texture Source", juce::dontSendNotification);
  texture_label_.setColour(juce::Label::textColourId, kText);
  texture_source_.addItemList(StarProcessor::texture_choices(), 1);
  texture_attachment_ = std::make_unique<juce::AudioProcessorValueTreeState::ComboBoxAttachment>(
      state, "texture_source", texture_source_);
  load_texture_.onClick = [this] { choose_texture_file(); };
  worker_.setColour(juce::ToggleButton::textColourId, kText);
  worker_attachment_ = std::make_unique<juce::AudioProcessorValueTreeState::ButtonAttachment>(
      state, "worker_thread", worker_);
  status_.setJustificationType(juce::Justification::topLeft);
  status_.setColour(juce::Label::textColourId, kDim);
  status_.setFont(juce::Font(13.0f));
  for (juce::Component* c : std::initializer_list<juce::Component*>{
           &texture_label_, &texture_source_, &load_texture_, &worker_, &status_})
    addAndMakeVisible(c);
  timerCallback();
  setSize(kWidth, 2 * kMargin + 40 + (int(rows_.size()) + 2) * kRow + 96);
  startTimerHz(4);
}

StarEditor::~StarEditor() { stopTimer(); }

void StarEditor::paint(juce::Graphics& g) {
  g.fillAll(kBackground);
  auto header = getLocalBounds().reduced(kMargin).removeFromTop(32);
  g.setColour(kText);
  g.setFont(juce::Font(22.0f, juce::Font::bold));
  g.drawText("STAR", header, juce::Justification::left);
  g.setColour(kDim);
  g.setFont(juce::Font(13.0f));
  g.drawText("latent structure / texture morph", header, juce::Justification::right);
  g.setColour(kPanel);
  g.fillRoundedRectangle(status_.getBounds().toFloat().expanded(6.0f), 6.0f);
}

void StarEditor::resized() {
  auto area = getLocalBounds().reduced(kMargin);
  area.removeFromTop(40);
  for (auto& row : rows_) {
    auto line = area.removeFromTop(kRow);
    row.label->setBounds(line.removeFromLeft(kLabelWidth));
    row.slider->setBounds(line);
  }
  auto line = area.removeFromTop(kRow);
  texture_label_.setBounds(line.removeFromLeft(kLabelWidth));
  load_texture_.setBounds(line.removeFromRight(130).reduced(0, 4));
  line.removeFromRight(8);
  texture_source_.setBounds(line.reduced(0, 4));
  worker_.setBounds(area.removeFromTop(kRow).withTrimmedLeft(kLabelWidth - 4));
  area.removeFromTop(10);
  status_.setBounds(area.reduced(6));
}

void StarEditor::timerCallback() {
  status_.setText(processor_.status().joinIntoString("\n"), juce::dontSendNotification);
}

void StarEditor::choose_texture_file() {
  const juce::File start = processor_.texture_file();
  chooser_ = std::make_unique<juce::FileChooser>(
      "Texture source (WAV at the model's rate)",
      start == juce::File() ? juce::File::getSpecialLocation(juce::File::userHomeDirectory)
                            : start,
      "*.wav");
  chooser_->launchAsync(juce::FileBrowserComponent::openMode |
                            juce::FileBrowserComponent::canSelectFiles,
                        [this](const juce::FileChooser& chooser) {
                          const juce::File file = chooser.getResult();
                          if (file != juce::File()) processor_.set_texture_file(file);
                        });
}
